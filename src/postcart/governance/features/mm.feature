@mm
Feature: Multiple myeloma after BCMA CAR-T failure
  Myeloma relapsing after ide-cel or cilta-cel: a target other than BCMA (GPRC5D) is preferred, BCMA
  can be targeted again when it is still expressed, and early failure favours a trial.

  Rule: A T-cell engager against another target comes first

    @bispecific_antibody @other_systemic_therapy @long_term_follow_up
    Scenario: Late relapse after cilta-cel with BCMA retained
      Given a 66-year-old with multiple myeloma who relapsed 14 months after cilta-cel
      And BCMA is retained on re-biopsy
      When postcart assesses the situation
      Then a bispecific antibody is recommended
      And the rationale cites Chari 2025
      And the reasons include "BCMA"
      And other systemic therapy is to be considered
      And long-term follow-up is recommended
      And the rationale cites Ghilardi 2024

    @bispecific_antibody @clinical_trial
    Scenario: Both talquetamab and teclistamab already used
      Given a 72-year-old with myeloma who relapsed 11 months after ide-cel
      And he has already received talquetamab
      And he has already received teclistamab
      And a suitable clinical trial is available
      When postcart assesses the situation
      Then a bispecific antibody is to be considered
      And a clinical trial is recommended

  Rule: BCMA CAR-T can be considered again only after a response and with BCMA retained

    @second_car_t_infusion @alternate_target_car_t
    Scenario: Relapse after a response to ide-cel
      Given a 61-year-old with multiple myeloma who relapsed 12 months after ide-cel
      And BCMA is retained on re-biopsy
      When postcart assesses the situation
      Then a second CAR-T infusion is to be considered
      And a CAR-T against another target is to be considered
      And the rationale cites Van Oekelen 2023

    @second_car_t_infusion
    Scenario: Myeloma that never responded to cilta-cel
      Given a 59-year-old with multiple myeloma refractory to cilta-cel, progressing 2 months after infusion
      When postcart assesses the situation
      Then a second CAR-T infusion is not advised

    @second_car_t_infusion @antigen_loss
    Scenario: BCMA lost at relapse
      Given a 64-year-old with multiple myeloma who relapsed 9 months after cilta-cel
      And BCMA is lost on re-biopsy
      When postcart assesses the situation
      Then a second CAR-T infusion is not advised
      And a bispecific antibody is recommended

    @other_systemic_therapy @fitness
    Scenario: Late relapse after ide-cel in a patient at ECOG 3
      Given a 74-year-old with multiple myeloma who relapsed 14 months after ide-cel
      And BCMA is retained on re-biopsy
      And ECOG performance status is 3
      When postcart assesses the situation
      Then other systemic therapy is to be considered
      And the rationale cites Van Oekelen 2023
      And the rationale mentions "not for a patient this frail"

  Rule: Early failure favours a clinical trial when one can be reached

    @clinical_trial @threshold
    Scenario Outline: Relapse on either side of three months with a trial available
      Given a 63-year-old with multiple myeloma who relapsed <months> months after cilta-cel
      And a suitable clinical trial is available
      When postcart assesses the situation
      Then a clinical trial is <verdict>

      Examples:
        | months | verdict          |
        | 2.9    | recommended      |
        | 3.1    | to be considered |

  Rule: Allogeneic transplant is not a standard option in myeloma, even for a fit patient with a donor

    @allogeneic_hct
    Scenario: Young fit myeloma patient with a matched sibling
      Given a 48-year-old with multiple myeloma who relapsed 10 months after cilta-cel
      And the HCT-CI is 0
      And organ function is adequate for intensive therapy
      And a matched sibling donor is available
      When postcart assesses the situation
      Then allogeneic transplant is not advised
      And the rationale cites Lokhorst 2010

  Rule: Radiotherapy relieves painful or compressive lesions

    @radiotherapy
    Scenario: Extramedullary plasmacytoma at relapse after cilta-cel
      Given a 63-year-old with myeloma who relapsed 9 months after cilta-cel
      And there is extramedullary disease
      When postcart assesses the situation
      Then radiotherapy is to be considered
      And the rationale cites Talamo 2015
      And the rationale mentions "extrapolated"

  Rule: Without GPRC5D on the relapse, the GPRC5D bispecific is not the one

    @bispecific_antibody
    Scenario: GPRC5D-negative relapse after ide-cel with BCMA retained
      Given a 60-year-old with myeloma who relapsed 12 months after ide-cel
      And BCMA is retained on re-biopsy
      And GPRC5D is negative on re-biopsy
      When postcart assesses the situation
      Then a bispecific antibody is to be considered
      And the rationale cites Dima 2025

  Rule: High-risk cytogenetics bring a trial forward

    @clinical_trial
    Scenario: del(17p) myeloma relapsing late after cilta-cel
      Given a 59-year-old with multiple myeloma who relapsed 14 months after cilta-cel
      And FISH shows high-risk cytogenetics
      And a suitable clinical trial is available
      When postcart assesses the situation
      Then a clinical trial is to be considered
      And the rationale cites Sonneveld 2016
