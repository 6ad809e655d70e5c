@antigen_loss
Feature: Loss of the CAR target at relapse
  When the antigen the CAR-T recognised (CD19, or BCMA in myeloma, or the target of an investigational
  CAR-T such as CD22 or GPRC5D) is gone from the relapsing disease, treatments aimed at that antigen
  lose their target; another target is needed. This is why a re-biopsy at failure matters.

  Rule: With the CAR target lost, re-infusing the same CAR-T is not advised

    @lbcl @second_car_t_infusion @alternate_target_car_t @other_systemic_therapy
    Scenario: CD19-negative relapse of large B-cell lymphoma
      Given a 60-year-old with large B-cell lymphoma who relapsed 6 months after axi-cel
      And CD19 is lost on re-biopsy
      When postcart assesses the situation
      Then a second CAR-T infusion is not advised
      And the rationale mentions "CAR target is gone"
      And a CAR-T against another target is to be considered
      And the rationale cites Fergusson 2023
      And other systemic therapy is to be considered

    @fl @alternate_target_car_t
    Scenario: CD19-negative relapse of follicular lymphoma
      Given a 55-year-old with follicular lymphoma who relapsed 20 months after axi-cel
      And CD19 is lost on re-biopsy
      When postcart assesses the situation
      Then a CAR-T against another target is to be considered
      And a second CAR-T infusion is not advised

    @mcl @alternate_target_car_t
    Scenario: CD19-negative relapse of mantle cell lymphoma
      Given a 67-year-old with mantle cell lymphoma who relapsed 8 months after brexu-cel
      And CD19 is lost on re-biopsy
      When postcart assesses the situation
      Then a CAR-T against another target is to be considered

    @mm @bispecific_antibody @clinical_trial
    Scenario: BCMA lost after cilta-cel and GPRC5D already targeted
      Given a 70-year-old with multiple myeloma who relapsed 10 months after cilta-cel
      And BCMA is lost on re-biopsy
      And she has already received talquetamab
      And a suitable clinical trial is available
      When postcart assesses the situation
      Then a bispecific antibody is to be considered
      And a clinical trial is recommended
      And a second CAR-T infusion is not advised

  Rule: After an investigational CAR-T against another antigen, what is lost is that antigen

    @b_all @other_systemic_therapy @alternate_target_car_t @bispecific_antibody @second_car_t_infusion
    Scenario: CD22 lost after an investigational CD22 CAR-T in B-ALL
      Given a 30-year-old with B-ALL who relapsed 4 months after an investigational CAR-T
      And the investigational CAR-T targets CD22
      And CD22 is lost on re-biopsy
      When postcart assesses the situation
      Then other systemic therapy is not advised
      And the rationale cites Fry 2018
      And the rationale mentions "inotuzumab"
      And a CAR-T against another target is to be considered
      And the rationale mentions "an antigen the disease still expresses"
      And a bispecific antibody is to be considered
      And the rationale mentions "confirm CD19"
      And a second CAR-T infusion is not advised

    @lbcl @alternate_target_car_t
    Scenario: CD22 lost after an investigational CD22 CAR-T in large B-cell lymphoma
      Given a 55-year-old with large B-cell lymphoma who relapsed 6 months after an investigational CAR-T
      And the investigational CAR-T targets CD22
      And CD22 is lost on re-biopsy
      When postcart assesses the situation
      Then a CAR-T against another target is to be considered
      And the rationale cites Fry 2018
      And a second CAR-T infusion is not advised

    @mm @bispecific_antibody @second_car_t_infusion
    Scenario: GPRC5D lost after an investigational GPRC5D CAR-T in myeloma
      Given a 64-year-old with multiple myeloma who relapsed 8 months after an investigational CAR-T
      And the investigational CAR-T targets GPRC5D
      And GPRC5D is lost on re-biopsy
      When postcart assesses the situation
      Then a bispecific antibody is to be considered
      And the rationale cites Moreau 2022
      And the rationale mentions "do not use the GPRC5D bispecific talquetamab"
      And a second CAR-T infusion is not advised

  Rule: With the CAR target retained, re-treating against it stays possible

    @lbcl @second_car_t_infusion
    Scenario: CD19-positive late relapse of large B-cell lymphoma
      Given a 57-year-old with large B-cell lymphoma who relapsed 12 months after axi-cel
      And CD19 is retained on re-biopsy
      When postcart assesses the situation
      Then a second CAR-T infusion is to be considered
      And the rationale cites Gauthier 2021

    @lbcl @second_car_t_infusion
    Scenario: Refractory disease is not re-treated with the same CAR-T even if CD19 is retained
      Given a 60-year-old with large B-cell lymphoma refractory to axi-cel, progressing 2 months after infusion
      And CD19 is retained on re-biopsy
      When postcart assesses the situation
      Then a second CAR-T infusion is not advised
