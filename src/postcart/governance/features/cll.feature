@cll
Feature: Chronic lymphocytic leukemia after liso-cel failure
  CLL relapsing after liso-cel: the evidence after CAR-T failure is thin, so trials come first when one
  can be reached; a second CD19 CAR-T and transplant are weighed for fit patients.

  Rule: A second CD19 CAR-T can be considered when CD19 is retained and the CAR-T cells are gone

    @second_car_t_infusion @long_term_follow_up
    Scenario: CD19-positive relapse after loss of CAR-T persistence
      Given a 63-year-old with chronic lymphocytic leukemia who relapsed 15 months after liso-cel
      And CD19 is retained on re-biopsy
      And CAR-T cells are no longer detectable
      When postcart assesses the situation
      Then a second CAR-T infusion is to be considered
      And the rationale cites Gauthier 2021
      And long-term follow-up is recommended
      And the rationale cites FDA 2024 boxed warning

  Rule: Trials first, transplant for the fit

    @clinical_trial @allogeneic_hct
    Scenario: A fit patient with a donor and a trial within reach
      Given a 54-year-old with CLL who relapsed 8 months after liso-cel
      And the HCT-CI is 2
      And organ function is adequate for intensive therapy
      And a matched unrelated donor is available
      And a suitable clinical trial is available
      When postcart assesses the situation
      Then a clinical trial is recommended
      And allogeneic transplant is to be considered

  Rule: After a covalent BTK inhibitor, pirtobrutinib is the approved next targeted drug

    @other_systemic_therapy
    Scenario: Relapse after liso-cel in a patient who had ibrutinib and venetoclax
      Given a 64-year-old with CLL who relapsed 10 months after liso-cel
      And he has already received ibrutinib
      And the disease was refractory to venetoclax
      When postcart assesses the situation
      Then other systemic therapy is to be considered
      And the rationale cites BRUIN CLL-321 (FDA 2025)
      And the rationale mentions "extrapolated"

    @other_systemic_therapy
    Scenario: No previous therapy recorded
      Given a 70-year-old with CLL who relapsed 7 months after liso-cel
      When postcart assesses the situation
      Then other systemic therapy is to be considered
      And the rationale mentions "Record the previous therapies"

  Rule: A Richter transformation follows the large B-cell lymphoma advice

    @bispecific_antibody @other_systemic_therapy
    Scenario: Richter transformation after liso-cel with CD20 retained
      Given a 61-year-old with CLL who relapsed 5 months after liso-cel
      And a biopsy confirms Richter transformation
      And CD20 is positive on the failure biopsy
      And he has already received ibrutinib
      When postcart assesses the situation
      Then a bispecific antibody is to be considered
      And the rationale mentions "extrapolated to Richter transformation"
      And other systemic therapy is not addressed

    @bispecific_antibody
    Scenario: CD20-negative Richter transformation
      Given a 66-year-old with CLL who relapsed 4 months after liso-cel
      And a biopsy confirms Richter transformation
      And CD20 is negative on the failure biopsy
      When postcart assesses the situation
      Then a bispecific antibody is not advised

    @allogeneic_hct
    Scenario: A Richter transformation in remission after salvage, fit, with a donor
      Given a 52-year-old with CLL who relapsed 6 months after liso-cel
      And a biopsy confirms Richter transformation
      And salvage therapy since the CAR-T has given a complete response
      And the HCT-CI is 1
      And organ function is adequate for intensive therapy
      And a matched related donor is available
      When postcart assesses the situation
      Then allogeneic transplant is to be considered
      And the rationale cites HOSCT 2021
      And the rationale cites Kim 2020

    @allogeneic_hct
    Scenario: A Richter transformation still progressing on salvage, fit, with a donor
      Given a 57-year-old with CLL who relapsed 7 months after liso-cel
      And a biopsy confirms Richter transformation
      And salvage therapy since the CAR-T has given progression
      And the HCT-CI is 2
      And organ function is adequate for intensive therapy
      And a matched unrelated donor is available
      When postcart assesses the situation
      Then allogeneic transplant is not advised
      And the rationale mentions "chemosensitive"

  Rule: TP53-aberrant CLL: transplant is weighed for the fit patient with a donor

    @allogeneic_hct
    Scenario: del(17p) CLL, fit, with a donor
      Given a 57-year-old with CLL who relapsed 9 months after liso-cel
      And there is a TP53 aberration
      And the HCT-CI is 1
      And organ function is adequate for intensive therapy
      And a matched unrelated donor is available
      When postcart assesses the situation
      Then allogeneic transplant is to be considered
      And the rationale cites Schetelig 2008
