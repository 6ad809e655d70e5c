@missing_information
Feature: Information postcart asks for
  postcart asks for the facts that would change its answer: the failure biopsy, CAR-T persistence,
  transplant work-up and trial access. It does not push a work-up that could not change the answer (for
  example in a patient too unwell for intensive treatment).

  Rule: The failure biopsy and transplant work-up are asked for when they would change the answer

    @lbcl @bispecific_antibody
    Scenario: Relapse without re-biopsy or transplant work-up
      Given a 57-year-old with large B-cell lymphoma who relapsed 7 months after axi-cel
      When postcart assesses the situation
      Then postcart asks for the CD20 status
      And postcart asks for the CD19 status
      And postcart asks for the donor search
      And postcart asks for the HCT-CI
      And postcart asks for organ function
      And postcart asks for trial access
      And a bispecific antibody is recommended

    @mm @bispecific_antibody
    Scenario: Myeloma relapse without a BCMA assessment
      Given a 65-year-old with multiple myeloma who relapsed 9 months after ide-cel
      When postcart assesses the situation
      Then postcart asks for the BCMA status
      And a bispecific antibody is recommended

    @b_all @second_car_t_infusion
    Scenario: B-ALL relapse without a persistence measurement
      Given a 30-year-old with B-ALL who relapsed 6 months after tisa-cel
      And CD19 is retained on re-biopsy
      When postcart assesses the situation
      Then postcart asks for CAR-T persistence
      And a second CAR-T infusion is to be considered
      And the rationale mentions "pending CAR-T persistence testing"

    @mcl @second_car_t_infusion
    Scenario: An investigational CD22 CAR-T failed
      Given a 62-year-old with mantle cell lymphoma who relapsed 6 months after an investigational CAR-T
      And the investigational CAR-T targets CD22
      When postcart assesses the situation
      Then postcart asks for the target antigen status

  Rule: No work-up is pushed when the patient is too unwell for it to matter

    @fl @quality_of_life_focus
    Scenario: ECOG 3 patient with unknowns
      Given a 79-year-old with follicular lymphoma who relapsed 6 months after tisa-cel
      And ECOG performance status is 3
      When postcart assesses the situation
      Then postcart does not ask for the CD20 status
      And postcart does not ask for the donor search
      And postcart does not ask for trial access
      And a focus on quality of life is recommended
